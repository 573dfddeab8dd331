<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.16-Białowieża" styleCategories="Symbology">
  <renderer-v2 type="RuleRenderer" forceraster="0" enableorderby="0" symbollevels="0" referencescale="-1">
    <rules key="{00000000-0000-4000-8000-000000000000}">
      <rule key="{00000000-0000-4000-8000-000000000001}" symbol="0" label="Failed" filter="&quot;status&quot; IS NOT NULL AND &quot;status&quot; &lt;&gt; 'done'"/>
      <rule key="{00000000-0000-4000-8000-000000000002}" symbol="1" label="Analysed &lt; 50 %" filter='"analysed_fraction" &lt; 0.5'/>
      <rule key="{00000000-0000-4000-8000-000000000003}" symbol="2" label="Analysed" filter="ELSE"/>
    </rules>
    <symbols>
    <symbol type="fill" name="0" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleFill" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="border_width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
          <Option type="QString" name="color" value="227,26,28,60"/>
          <Option type="QString" name="joinstyle" value="bevel"/>
          <Option type="QString" name="offset" value="0,0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="outline_color" value="227,26,28,255"/>
          <Option type="QString" name="outline_style" value="solid"/>
          <Option type="QString" name="outline_width" value="0.4"/>
          <Option type="QString" name="outline_width_unit" value="MM"/>
          <Option type="QString" name="style" value="b_diagonal"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="fill" name="1" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleFill" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="border_width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
          <Option type="QString" name="color" value="150,150,150,70"/>
          <Option type="QString" name="joinstyle" value="bevel"/>
          <Option type="QString" name="offset" value="0,0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="outline_color" value="120,120,120,255"/>
          <Option type="QString" name="outline_style" value="dash"/>
          <Option type="QString" name="outline_width" value="0.3"/>
          <Option type="QString" name="outline_width_unit" value="MM"/>
          <Option type="QString" name="style" value="solid"/>
        </Option>
      </layer>
    </symbol>
    <symbol type="fill" name="2" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleFill" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="border_width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
          <Option type="QString" name="color" value="0,0,0,0"/>
          <Option type="QString" name="joinstyle" value="bevel"/>
          <Option type="QString" name="offset" value="0,0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="outline_color" value="60,100,160,255"/>
          <Option type="QString" name="outline_style" value="solid"/>
          <Option type="QString" name="outline_width" value="0.3"/>
          <Option type="QString" name="outline_width_unit" value="MM"/>
          <Option type="QString" name="style" value="no"/>
        </Option>
      </layer>
    </symbol>
    </symbols>
  </renderer-v2>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerGeometryType>2</layerGeometryType>
</qgis>
